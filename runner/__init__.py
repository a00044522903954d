"""runner — many jobs against many replicas of a Gradio app: manifests, scheduling,
results on disk and resume. Built on `jobs`; `jobs` never imports `runner`."""

__all__: list[str] = []
