"""Calendar providers: one package per vendor, each implementing the calendar ports."""
