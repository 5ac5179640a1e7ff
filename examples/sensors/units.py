def to_celsius(value, unit):
    return round((value - 32) * 5 / 9, 2) if unit == "F" else value
