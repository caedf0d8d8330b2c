"""Pieces several pages share: the job panel, the spec sidebar, model results, messages."""
