"""Token counting of a build's requests: tiktoken's count for every model (approximate for models
whose tokenizer is not public), Anthropic's own for Claude bodies when the run asks for it.

A prompt row with the shared parameters (`BatchRequest.prompt`) counts as its model's prompt-row
body without the prompt, counted once per model, plus one encode of the prompt: each message
counts on its own, so the sum is the whole body's count (tests/unit/test_build_fast_paths.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ledger.build.bodies import BatchRequest, RowProblem
from ledger.build.claude_tokens import REMOTE_COUNT_FLAGS, REMOTE_COUNTED
from ledger.errors import LedgerError
from ledger.usage.tokens import TokenCounters

#: Makes the body of a prompt row of a model and text (`RowBuilder.prompt_body`).
PromptBody = Callable[[str, str], dict[str, Any]]


class RequestCounter:
    """Sets each request's estimated input tokens and refuses those over `max_context`."""

    def __init__(
        self,
        max_context: int | None,
        claude_counter: Callable[[Mapping[str, Any]], int] | None,
    ) -> None:
        self.counters = TokenCounters()
        self.max_context = max_context
        #: Anthropic's count of a Claude body, while it answers (None: approximate instead).
        self.claude_counter = claude_counter
        self.claude_counted = False
        #: Per model, the tokens of its prompt rows' body without the prompt.
        self.template_counts: dict[str, int] = {}
        #: Warnings said once each (Anthropic's counting failing).
        self.warnings: dict[str, None] = {}

    def count(
        self,
        requests: list[BatchRequest],
        endpoint: str,
        prompt_body: PromptBody | None,
        reject: Callable[[RowProblem, int], None],
    ) -> list[BatchRequest]:
        """The requests that fit `max_context`, each with its `est_tokens`; `prompt_body`
        makes the body the prompt rows' counts start from (None: ready lines)."""
        max_context = self.max_context
        model, count, encode, base = None, None, None, None
        kept = []
        for request in requests:
            if request.model != model:
                model = request.model
                counter = self.counters.for_model(model)
                count, encode = counter.for_endpoint(endpoint), counter.encode_ordinary
                base = self.template_tokens(model, count, prompt_body)
            assert count is not None and encode is not None
            tokens = None
            if self.claude_counter is not None and request.model.startswith(REMOTE_COUNTED):
                tokens = self._count_with_anthropic(request.parsed_body())
            if tokens is None:
                prompt = request.prompt
                if prompt is not None and base is not None:
                    tokens = base + len(encode(prompt))
                else:
                    tokens = count(request.parsed_body())
            request.est_tokens = tokens
            if max_context is not None:
                needed = tokens + (request.max_output_tokens or 0)
                if needed > max_context:
                    output = (
                        f" + {request.max_output_tokens} output"
                        if request.max_output_tokens
                        else ""
                    )
                    reject(
                        RowProblem(
                            f"needs about {tokens} input{output} tokens, more than "
                            f"--max-context {max_context}"
                        ),
                        request.line_number,
                    )
                    continue
            kept.append(request)
        return kept

    def template_tokens(
        self,
        model: str,
        count: Callable[[Mapping[str, Any]], int],
        prompt_body: PromptBody | None,
    ) -> int | None:
        """The tokens of `model`'s prompt-row body with an empty prompt, counted once."""
        known = self.template_counts.get(model)
        if known is None and prompt_body is not None:
            known = self.template_counts[model] = count(prompt_body(model, ""))
        return known

    def _count_with_anthropic(self, body: dict[str, Any]) -> int | None:
        """Anthropic's count of one body; None, and approximate from then on, once it fails."""
        assert self.claude_counter is not None
        try:
            counted = self.claude_counter(body)
        except LedgerError as error:
            self.warnings[f"{error}: input tokens approximated"] = None
            self.claude_counter = None
            return None
        self.claude_counted = True
        return counted

    def all_warnings(self) -> list[str]:
        """The counting's warnings (the approximation of Claude's tokens not said when
        Anthropic counted them)."""
        said = [
            w
            for w in self.counters.warnings
            if not (self.claude_counted and any(f in w for f in REMOTE_COUNT_FLAGS))
        ]
        return [*said, *self.warnings]

    def exact(self) -> bool:
        """Whether no model's tokens were approximated (Anthropic counted every Claude
        request)."""
        approximate = self.counters.approximate
        if self.claude_counter is not None and self.claude_counted:
            # Anthropic answered every Claude request (a failure clears `claude_counter`).
            approximate = {m for m in approximate if not m.startswith(REMOTE_COUNTED)}
        return not approximate
