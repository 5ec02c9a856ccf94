"""`manage.py advice`: print the advice (the findings with their evidence and drafts), as GET /api/advice/ gives it."""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from metrics.api.advice import advice_document


class Command(BaseCommand):
    help = ("Print the advice: each finding with its evidence and the diff of its draft change (apply one with POST "
            "/api/advice/{id}/apply/ or on the admin's Advice page).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="The whole document as JSON, as the API answers.")
        parser.add_argument("--no-llm", action="store_true",
                            help="Use the templates' words even when the gateway-wide ai provider is configured.")

    def handle(self, *args: Any, **options: Any) -> None:
        document = advice_document(llm="off" if options["no_llm"] else "call")
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2, default=str))
            return
        if not document["findings"]:
            self.stdout.write("No advice: the stored traffic raises nothing to change.")
            return
        for item in document["findings"]:
            self.stdout.write(f"[{item['severity']}] {item['id']}")
            self.stdout.write(f"  {item['text']}")
            figures = item["evidence"]["figures"]
            span = item["evidence"]["range"]
            self.stdout.write(f"  evidence ({span['start']} to {span['end']}): "
                              + json.dumps(figures, default=str)[:600])
            if item["llm_refusal"]:
                self.stdout.write(f"  the LLM's answer was refused: {item['llm_refusal']}")
            if item["diff"]:
                self.stdout.write("  draft:")
                for line in item["diff"].splitlines():
                    self.stdout.write(f"    {line}")
