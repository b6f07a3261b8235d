# rehab-funds: its own Transit key only, and only to wrap, unwrap and re-wrap data keys with it, and to read which
# versions it has (names and numbers; never key material). It may not create, rotate, trim, export or delete the
# key, nor touch another service's: a stolen funds token opens funds's records at most, and only while OpenBao answers.
path "transit/encrypt/rehab-funds" {
  capabilities = ["update"]
}

path "transit/decrypt/rehab-funds" {
  capabilities = ["update"]
}

path "transit/rewrap/rehab-funds" {
  capabilities = ["update"]
}

path "transit/keys/rehab-funds" {
  capabilities = ["read"]
}
