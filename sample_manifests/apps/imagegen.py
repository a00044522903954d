"""A procedural offline "image generator": a Gradio app for the parameter-sweep sample.

No model is involved. The picture is drawn with numpy and PIL from a hash of the
prompt and the seed, so it is deterministic (same prompt, seed, steps and guidance
give the same pixels) and different seeds give different pictures, which is what a
parameter sweep needs to be checkable offline. ``steps`` adds layers of ever finer
shapes; ``guidance`` raises contrast and saturation. For a real run, point the
manifest at a text-to-image Space instead and map its parameters.

Endpoint: ``/generate(prompt: str, seed: int, steps: int = 20, guidance: float = 7.5)
-> (image: PNG, parameters: JSON)``.

Run it::

    GRADIO_SERVER_PORT=7863 python imagegen.py

``GRADIO_SERVER_NAME`` sets the host (default 127.0.0.1). ``generate()`` can be
imported and called without launching anything.
"""

import hashlib
import os
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 256
MIN_STEPS, MAX_STEPS, DEFAULT_STEPS = 1, 50, 20
MIN_GUIDANCE, MAX_GUIDANCE, DEFAULT_GUIDANCE = 0.0, 20.0, 7.5


def _rng(prompt: str, seed: int) -> np.random.Generator:
    """A generator seeded from the prompt text and the seed, stable across runs."""
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _background(rng: np.random.Generator) -> Image.Image:
    """A diagonal gradient between two random colours."""
    top, bottom = rng.integers(0, 256, size=(2, 3))
    ramp = np.add.outer(np.arange(SIZE), np.arange(SIZE)) / (2 * (SIZE - 1))
    pixels = top + (bottom - top) * ramp[..., None]
    return Image.fromarray(pixels.astype(np.uint8))


def _draw_layers(image: Image.Image, rng: np.random.Generator, steps: int) -> None:
    """One layer per step; each layer's shapes are smaller, so more steps = more detail."""
    draw = ImageDraw.Draw(image, "RGBA")
    for step in range(steps):
        scale = SIZE * 0.45 * (0.85**step)
        for _ in range(2 + step // 4):
            x, y = rng.uniform(0, SIZE, size=2)
            w, h = rng.uniform(0.3, 1.0, size=2) * max(scale, 2.0)
            colour = (*(int(c) for c in rng.integers(0, 256, size=3)), int(rng.integers(60, 200)))
            box = (x - w, y - h, x + w, y + h)
            if rng.random() < 0.5:
                draw.ellipse(box, fill=colour)
            else:
                draw.rectangle(box, fill=colour)


def _apply_guidance(image: Image.Image, guidance: float) -> Image.Image:
    """Stretch contrast and saturation around the mean; 0 = washed out, 20 = harsh."""
    pixels = np.asarray(image, dtype=np.float64)
    strength = 0.4 + guidance / 10.0
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * strength
    pixels = pixels.mean() + (pixels - pixels.mean()) * (0.7 + guidance / 25.0)
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def render(prompt: str, seed: int, steps: int, guidance: float) -> Image.Image:
    """Draw the picture for already validated parameters."""
    rng = _rng(prompt, seed)
    image = _background(rng)
    _draw_layers(image, rng, steps)
    # A slight blur, weaker with more steps: few steps look rough, many look "refined".
    image = image.filter(ImageFilter.GaussianBlur(radius=2.0 / steps**0.5))
    return _apply_guidance(image, guidance)


def generate(
    prompt: str,
    seed: int,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
) -> tuple[Image.Image, dict[str, Any]]:
    """Return a deterministic 256x256 picture and the parameters that made it.

    Raises ``gr.Error`` when steps or guidance are out of range or seed is not
    a whole number.
    """
    if seed is None or float(seed) != int(seed):
        raise gr.Error(f"seed must be a whole number, got {seed!r}.")
    if steps is None or not MIN_STEPS <= int(steps) <= MAX_STEPS:
        raise gr.Error(f"steps must be between {MIN_STEPS} and {MAX_STEPS}, got {steps!r}.")
    if guidance is None or not MIN_GUIDANCE <= float(guidance) <= MAX_GUIDANCE:
        raise gr.Error(
            f"guidance must be between {MIN_GUIDANCE} and {MAX_GUIDANCE}, got {guidance!r}."
        )
    params: dict[str, Any] = {
        "prompt": prompt or "",
        "seed": int(seed),
        "steps": int(steps),
        "guidance": float(guidance),
        "width": SIZE,
        "height": SIZE,
    }
    image = render(params["prompt"], params["seed"], params["steps"], params["guidance"])
    return image, params


def build_demo() -> gr.Blocks:
    """Build the Blocks app (does not launch it)."""
    demo = gr.Blocks(title="Procedural image generator", analytics_enabled=False)
    with demo:
        gr.Markdown(
            "# Procedural image generator\nNo model: shapes drawn from a hash of the "
            "prompt and seed. Same inputs, same picture."
        )
        prompt = gr.Textbox(label="Prompt", value="a lighthouse at dusk")
        seed = gr.Number(label="Seed", value=0, precision=0)
        steps = gr.Slider(MIN_STEPS, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="Steps")
        guidance = gr.Number(label="Guidance", value=DEFAULT_GUIDANCE)
        button = gr.Button("Generate", variant="primary")
        image = gr.Image(label="Image", type="pil", format="png")
        parameters = gr.JSON(label="Parameters")
        button.click(
            generate,
            inputs=[prompt, seed, steps, guidance],
            outputs=[image, parameters],
            api_name="generate",
            concurrency_limit=2,
        )
    return demo


def main() -> None:
    port = os.environ.get("GRADIO_SERVER_PORT")
    build_demo().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port) if port else None,
    )


if __name__ == "__main__":
    main()
