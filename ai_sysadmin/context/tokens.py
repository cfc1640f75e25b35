"""Token counts with the serving model's own tokenizer, cached by content hash.

`/tokenize` of llama-server is exact; every count is cached by the SHA-256 of the text
(bounded LRU), so a context rebuilt from mostly the same parts costs few requests.
When the server has no `/tokenize` (another OpenAI-compatible server) or is down, a
calibrated estimate is used: characters per token learned from the exact counts seen
so far (a conservative default before any), rounded up with a safety margin.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

from ai_sysadmin.llm.errors import LLMError

DEFAULT_CHARS_PER_TOKEN = 2.5  # conservative: real English/log text is 3-4 chars per token
ESTIMATE_MARGIN = 1.15  # estimates err on the side of "too many tokens"
CACHE_ENTRIES = 4096


class TokenCounter:
    def __init__(self, client: Any | None, *, cache_entries: int = CACHE_ENTRIES):
        self._client = client  # LLMClient of the review role (None: estimate only)
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._max = cache_entries
        self._chars = 0  # calibration: characters and tokens of exact counts
        self._tokens = 0
        self.exact_calls = 0
        self.estimates = 0
        self.last_error: str | None = None

    @property
    def chars_per_token(self) -> float:
        if self._tokens < 200:  # too little seen to trust
            return DEFAULT_CHARS_PER_TOKEN
        return self._chars / self._tokens

    def estimate(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token * ESTIMATE_MARGIN) + 1

    async def count(self, text: str) -> int:
        if not text:
            return 0
        key = hashlib.sha256(text.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        if self._client is not None:
            try:
                n = await self._client.count_tokens(text)
            except LLMError as exc:  # Unsupported, down, loading: estimate, and do not cache it
                self.last_error = str(exc)
                self.estimates += 1
                return self.estimate(text)
            self.exact_calls += 1
            self.last_error = None
            self._chars += len(text)
            self._tokens += n
            self._cache[key] = n
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
            return n
        self.estimates += 1
        return self.estimate(text)

    @property
    def cache_size(self) -> int:
        return len(self._cache)
