# rehab-intake: its own Transit key only, and only to wrap, unwrap and re-wrap data keys with it, and to read which
# versions it has (names and numbers; never key material). It may not create, rotate, trim, export or delete the
# key, nor touch another service's: a stolen intake token opens intake's records at most, and only while OpenBao answers.
path "transit/encrypt/rehab-intake" {
  capabilities = ["update"]
}

path "transit/decrypt/rehab-intake" {
  capabilities = ["update"]
}

path "transit/rewrap/rehab-intake" {
  capabilities = ["update"]
}

path "transit/keys/rehab-intake" {
  capabilities = ["read"]
}
