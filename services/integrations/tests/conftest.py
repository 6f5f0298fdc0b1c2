"""Fixtures of the integrations tests; the helpers live in ``integrations_fakes`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from integrations_fakes import chat, demo_crm, fake, service_factory

__all__ = ["chat", "demo_crm", "fake", "service_factory"]
