"""HTTP for one app: its URLs, requests and errors (`app`), bounded body reading and
decompression (`bodies`), the pooled httpx client (`client`) and the aiohttp transport
under it (`aio`)."""

__all__: list[str] = []
