"""What the cleaning stage reports about the values it could not parse."""
