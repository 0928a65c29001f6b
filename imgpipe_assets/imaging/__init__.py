"""Pure imaging: decode, segment, frame, shadow, composite, encode. No Dagster here."""
