"""The Frappe module "BTU Hooks" of the btu_hooks app (modules.txt). Frappe needs a package per
module; this app defines no DocTypes, so it is empty."""
