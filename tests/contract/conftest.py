import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # until a root conftest puts the project on sys.path
    sys.path.insert(0, str(ROOT))
