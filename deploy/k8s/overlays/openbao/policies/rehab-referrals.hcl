# rehab-referrals: its own Transit key only, and only to wrap, unwrap and re-wrap data keys with it, and to read which
# versions it has (names and numbers; never key material). It may not create, rotate, trim, export or delete the
# key, nor touch another service's: a stolen referrals token opens referrals's records at most, and only while OpenBao answers.
path "transit/encrypt/rehab-referrals" {
  capabilities = ["update"]
}

path "transit/decrypt/rehab-referrals" {
  capabilities = ["update"]
}

path "transit/rewrap/rehab-referrals" {
  capabilities = ["update"]
}

path "transit/keys/rehab-referrals" {
  capabilities = ["read"]
}
