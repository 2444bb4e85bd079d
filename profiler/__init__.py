"""The controller: cases -> exported models -> agents on devices -> the measurement store."""
