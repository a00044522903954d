"""A script that loads a "model" for a while before it launches (a sleep stands in for
the load), printing progress as loaders do, then launches without blocking
(`prevent_thread_lock=True`) and lets the script end: the launcher must keep it serving.

$SLOW_LOAD_STEPS steps (default 3) of $SLOW_LOAD_STEP_SECONDS (default 1) each.
"""

import os
import time

import gradio as gr

steps = int(os.environ.get("SLOW_LOAD_STEPS", "3"))
for step in range(1, steps + 1):
    print(f"Loading checkpoint shards {step}/{steps}", flush=True)
    time.sleep(float(os.environ.get("SLOW_LOAD_STEP_SECONDS", "1")))


def double(x: float) -> float:
    return 2 * x


demo = gr.Interface(fn=double, inputs="number", outputs="number")
demo.launch(server_port=7962, prevent_thread_lock=True)
print("slow_load: launched; the script ends here", flush=True)
