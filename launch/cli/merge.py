"""`classroom merge ADAPTER OUT [--base MODEL]`: a trained student as a plain model folder.

A LoRA adapter (a run's ``adapter/``) merged into its base model's weights: serve it
for a long evaluation-only phase at base-model speed with
``model.models.NAME.engine.model=OUT engine.enable_lora=false`` (adapter requests cost
about twice as much on vLLM's CPU build: ``classroom bench learner``).
"""

from __future__ import annotations

import sys


def merge_main(argv: list[str]) -> int:
    """Entry of `classroom merge ADAPTER OUT [--base MODEL]`."""
    from classroom.launch.cli.arguments import command_parser

    parser = command_parser("merge", "Merge a LoRA adapter into its base model's weights: a model folder an engine serves at base speed.")
    parser.add_argument("adapter", help="a LoRA adapter folder (a run's adapter/)")
    parser.add_argument("out", help="a new (or empty) folder for the merged model")
    parser.add_argument(
        "--base", default=None, help="the base model: 'embedded', a local folder or a hub id (default: the one the adapter names)"
    )
    args = parser.parse(argv)
    from classroom.serving.merged import merge_adapter

    try:
        merged = merge_adapter(args.adapter, args.out, base_model=args.base)  # a MergeError: classroom's main says it
    except ImportError as exc:  # a core-only install: no torch, transformers or peft
        print(f"classroom merge: needs the cpu or gpu extra (pip install 'classroom[cpu]'): {exc}", file=sys.stderr)
        return 2
    print(
        f"merged adapter {merged.adapter_digest} into {merged.base_model} in {merged.seconds:.1f} s: {merged.path}\n"
        f"serve it with model.models.NAME.engine.model={merged.path} model.models.NAME.engine.enable_lora=false"
    )
    return 0
