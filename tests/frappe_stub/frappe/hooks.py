"""hooks.py of the stand-in `frappe` app (the real one has many more)."""

app_name = "frappe"
app_title = "Frappe Framework (stand-in)"
app_publisher = "btu-scheduler tests"
app_description = "Stand-in for the Frappe framework, tests only"
app_license = "MIT"
