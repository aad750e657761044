"""Rule files: loading, validation (``vigil rules check``) and the loaded model."""

from __future__ import annotations

from alerter.rules.load import expand_globs, load_file, load_files, parse_rules
from alerter.rules.model import Rule, RuleGroup

__all__ = ["Rule", "RuleGroup", "expand_globs", "load_file", "load_files", "parse_rules"]
