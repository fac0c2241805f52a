"""The SDK's tests import the package from this checkout, whichever interpreter runs them."""

import os
import sys

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if SDK not in sys.path:
    sys.path.insert(0, SDK)
