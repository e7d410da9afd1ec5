"""`signoff demo`: the whole product on one machine, for a newcomer's first minute."""
