"""The classic entry point: python run.py --mode txt2img --device cpu --save [--num N] [--local] [--limit]."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from sdplay.legacy import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
