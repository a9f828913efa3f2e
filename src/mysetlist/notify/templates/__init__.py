"""Email templates: the sandboxed renderer, the shipped set (`shipped/`) and the versions
operators save."""
