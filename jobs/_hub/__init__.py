"""The Hugging Face Hub: Spaces (`spaces`: id to URL, stage, waiting, duplication), the
calls a batch makes around them (`api`: quota, prices, pause, restart), made one way
(`calls`), with the Hub's errors translated into ours (`translate`).

huggingface_hub loads only when the Hub is called."""

__all__: list[str] = []
