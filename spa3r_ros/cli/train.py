# Copyright 2026 The spa3r_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""``spa3r train``: fine-tune the models on recorded bags (``psfm``, ``vlm``; ``tokenizer``).

::

    spa3r train psfm --data BAGS... --out RUN [--init PRESET_OR_DIR] [--max-steps N]
                     [--config FILE] [--resume] [--heldout BAGS...] [--section.field VALUE ...]
    spa3r train vlm --data DATA... --out RUN [--init PRESET_OR_DIR] [--trainable adaptor|lora|full]
                    [--lora-rank R] [--gasp-weight W] [--max-steps N] [--config FILE] [--resume]
                    [--heldout DATA...] [--section.field VALUE ...]
    spa3r train tokenizer --data DATA... --out DIR [--vocab-size N] [--post-prompts MODE]

The same command runs under ``torchrun --nproc-per-node N -m spa3r_ros.cli.main train ...``.
What they do is :func:`spa3r_ros.training.launch.train_psfm` / ``train_vlm``; the config fields
are in ``config/train_psfm.yaml`` / ``config/train_vlm.yaml`` (source:
:mod:`spa3r_ros.configs.train`). ``vlm`` scores ``--heldout`` scenes with ``spa3r eval``'s engine
and scoring at every evaluation (:mod:`spa3r_ros.tools.heldout_eval`).

Exit status: 0 when the run finished, 2 for bad input (a missing bag, a bad config file or
override, an unknown preset, a run folder in the wrong state), 130 when interrupted (the last
checkpoint stays; ``--resume`` continues).
"""

import argparse
import logging
import os
import sys

from spa3r_ros.cli.offline import EXIT_BAD_INPUT, interruptible
from spa3r_ros.configs.train import load_train_config, parse_overrides, SCHEMAS
from spa3r_ros.configs.vlm_data import POST_PROMPT_MODES
from spa3r_ros.core.errors import Spa3rError
from spa3r_ros.training.tokenizer import DEFAULT_VOCAB_SIZE

PROG = 'spa3r train'
DEFAULT_CONFIG = 'config/train_psfm.yaml'
DEFAULT_CONFIGS = {'psfm': DEFAULT_CONFIG, 'vlm': 'config/train_vlm.yaml'}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spa3r train``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Fine-tune on recorded bags. Config fields (config/train_psfm.yaml) are '
        'overridden per flag: --optim.lr 2e-4 --run.eval_every 50.',
    )
    sub = parser.add_subparsers(dest='objective', required=True)
    psfm = sub.add_parser(
        'psfm', help='self-supervised Spa3R fine-tuning (predictive spatial field modelling)'
    )
    psfm.add_argument(
        '--data', nargs='+', required=True, help='bags, folders of bags or spa3r world output'
    )
    psfm.add_argument('--out', required=True, help='run folder (checkpoints, logs, export/)')
    psfm.add_argument(
        '--init',
        default='tiny-random',
        help='starting models: a preset name or a scene-models folder (default tiny-random)',
    )
    psfm.add_argument('--max-steps', type=int, help='optimiser steps (run.max_steps)')
    psfm.add_argument(
        '--config', help=f'YAML config (default: {DEFAULT_CONFIG} defaults, built in)'
    )
    psfm.add_argument('--resume', action='store_true', help='continue the run in --out')
    psfm.add_argument('--heldout', nargs='+', default=[], help='held-out recordings')
    psfm.add_argument('-v', '--verbose', action='store_true', help='log at INFO level')
    vlm = sub.add_parser(
        'vlm', help='Spa3-VLM fine-tuning on spatial questions (answers of spa3r qa files)'
    )
    vlm.add_argument(
        '--data',
        nargs='+',
        required=True,
        help='scene folders holding qa.jsonl (spa3r world + spa3r qa), folders of them, or bags '
        'with a QA file',
    )
    vlm.add_argument('--out', required=True, help='run folder (checkpoints, logs, export/)')
    vlm.add_argument(
        '--init',
        default='tiny-random',
        help='starting models: a preset name or a scene-models folder (default tiny-random)',
    )
    vlm.add_argument(
        '--trainable',
        choices=('adaptor', 'lora', 'full'),
        help='what trains besides the frozen vision tower and Spa3R (vlm.trainable)',
    )
    vlm.add_argument('--lora-rank', type=int, help='LoRA rank (vlm.lora_rank)')
    vlm.add_argument('--gasp-weight', type=float, help='GASP loss weight, 0 = off')
    vlm.add_argument('--max-steps', type=int, help='optimiser steps (run.max_steps)')
    vlm.add_argument(
        '--config', help=f'YAML config (default: {DEFAULT_CONFIGS["vlm"]} defaults, built in)'
    )
    vlm.add_argument('--resume', action='store_true', help='continue the run in --out')
    vlm.add_argument(
        '--heldout',
        nargs='+',
        default=[],
        help='held-out QA scenes: answer loss and spa3r eval scores at every evaluation',
    )
    vlm.add_argument('-v', '--verbose', action='store_true', help='log at INFO level')
    tokenizer = sub.add_parser(
        'tokenizer',
        help='learn a byte-level BPE tokenizer from QA data (for a model trained from scratch; '
        'use it with train vlm --vlm.tokenizer DIR)',
    )
    tokenizer.add_argument(
        '--data', nargs='+', required=True, help='QA data, as train vlm --data takes it'
    )
    tokenizer.add_argument('--out', required=True, help='tokenizer folder (files are replaced)')
    tokenizer.add_argument(
        '--vocab-size',
        type=int,
        default=DEFAULT_VOCAB_SIZE,
        help=f'most learnt entries, bytes included, before the 22 Qwen added tokens '
        f'(default {DEFAULT_VOCAB_SIZE})',
    )
    tokenizer.add_argument(
        '--post-prompts',
        choices=POST_PROMPT_MODES,
        default='lmms_eval',
        help='prompt style of the samples (data.post_prompts of train vlm; default lmms_eval)',
    )
    return parser


def _train_tokenizer(args: argparse.Namespace) -> int:
    """``spa3r train tokenizer``: learn, save, and report how much shorter the samples get."""
    from spa3r_ros.models.vlm.tiny import build_tiny_qwen_tokenizer
    from spa3r_ros.training.tokenizer import qa_prompt_texts, train_prompt_tokenizer
    from spa3r_ros.training.vlm_data import expand_qa_sources

    texts = list(qa_prompt_texts(expand_qa_sources(args.data), args.post_prompts))
    if not texts:
        print(f'{PROG}: error: no questions in {args.data}', file=sys.stderr)
        return EXIT_BAD_INPUT
    tokenizer = train_prompt_tokenizer(texts, args.vocab_size)
    tokenizer.save_pretrained(args.out)

    def tokens_per_sample(tok) -> float:
        return sum(len(tok(t, add_special_tokens=False)['input_ids']) for t in texts) / len(texts)

    print(f'== {PROG} tokenizer: {args.out} ==')
    print(f'questions: {len(texts)}')
    added = len(tokenizer.added_tokens_decoder)
    print(f'entries: {len(tokenizer)} (learnt {len(tokenizer) - added}, added {added})')
    byte_level = tokens_per_sample(build_tiny_qwen_tokenizer())
    print(
        f'text tokens per sample: {tokens_per_sample(tokenizer):.1f} (byte-level, as the random '
        f'presets read it: {byte_level:.1f}; images not counted)'
    )
    return 0


def _main(argv: list[str] | None = None) -> int:
    """``spa3r train``; returns the exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.objective == 'tokenizer':
        if rest:
            parser.error(f'unrecognized arguments: {" ".join(rest)}')
        try:
            return _train_tokenizer(args)
        except (Spa3rError, ValueError, FileNotFoundError) as err:
            print(f'{PROG}: error: {err}', file=sys.stderr)
            return EXIT_BAD_INPUT
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format='%(levelname)s %(name)s: %(message)s',
    )
    # Progress lines of the run (held-out before/after) are INFO of the training logger.
    logging.getLogger('spa3r_ros.training').setLevel(logging.INFO)
    schema = SCHEMAS[args.objective]
    try:
        overrides = parse_overrides(rest, schema)
        if args.max_steps is not None:
            overrides['run.max_steps'] = args.max_steps
        if args.objective == 'vlm':
            for flag, name in (
                ('trainable', 'vlm.trainable'),
                ('lora_rank', 'vlm.lora_rank'),
                ('gasp_weight', 'vlm.gasp_weight'),
            ):
                if getattr(args, flag) is not None:
                    overrides[name] = getattr(args, flag)
        config = load_train_config(args.config, overrides, schema=schema)
    except Spa3rError as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return EXIT_BAD_INPUT
    from spa3r_ros.training.launch import check_psfm_inputs, train_psfm, train_vlm

    try:
        check_psfm_inputs(args.data, args.out, args.resume, args.heldout)
        common = dict(init=args.init, resume=args.resume, heldout=args.heldout)
        if args.objective == 'vlm':
            scorer = None
            if args.heldout and os.environ.get('RANK', '0') == '0':
                from spa3r_ros.tools.heldout_eval import heldout_eval_scorer

                scorer = heldout_eval_scorer(args.heldout)
            summary = train_vlm(args.data, args.out, config, heldout_scorer=scorer, **common)
        else:
            summary = train_psfm(args.data, args.out, config, **common)
    except (Spa3rError, ValueError, FileNotFoundError) as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return EXIT_BAD_INPUT
    if os.environ.get('RANK', '0') == '0':  # one summary under torchrun
        print(f'== {PROG} {args.objective}: {args.out} ==')
        print(summary.text())
    return 0


main = interruptible(PROG, _main)


if __name__ == '__main__':
    sys.exit(main())
