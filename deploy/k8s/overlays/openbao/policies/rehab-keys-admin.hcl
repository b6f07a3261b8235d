# rehab-keys-admin: the operator's `rehab keys rotate | retire` and the first creation of each service's key.
# Creates, reads and rotates the services' Transit keys, re-wraps their data keys, raises the minimum versions and
# trims retired ones. It cannot export a key or delete one (deletion_allowed stays false), nor touch other keys.

path "transit/keys/rehab-intake" {
  capabilities = ["create", "read", "update"]
}

path "transit/keys/rehab-intake/rotate" {
  capabilities = ["update"]
}

path "transit/keys/rehab-intake/config" {
  capabilities = ["update"]
}

path "transit/keys/rehab-intake/trim" {
  capabilities = ["update"]
}

path "transit/encrypt/rehab-intake" {
  capabilities = ["update"]
}

path "transit/decrypt/rehab-intake" {
  capabilities = ["update"]
}

path "transit/rewrap/rehab-intake" {
  capabilities = ["update"]
}

path "transit/keys/rehab-referrals" {
  capabilities = ["create", "read", "update"]
}

path "transit/keys/rehab-referrals/rotate" {
  capabilities = ["update"]
}

path "transit/keys/rehab-referrals/config" {
  capabilities = ["update"]
}

path "transit/keys/rehab-referrals/trim" {
  capabilities = ["update"]
}

path "transit/encrypt/rehab-referrals" {
  capabilities = ["update"]
}

path "transit/decrypt/rehab-referrals" {
  capabilities = ["update"]
}

path "transit/rewrap/rehab-referrals" {
  capabilities = ["update"]
}

path "transit/keys/rehab-funds" {
  capabilities = ["create", "read", "update"]
}

path "transit/keys/rehab-funds/rotate" {
  capabilities = ["update"]
}

path "transit/keys/rehab-funds/config" {
  capabilities = ["update"]
}

path "transit/keys/rehab-funds/trim" {
  capabilities = ["update"]
}

path "transit/encrypt/rehab-funds" {
  capabilities = ["update"]
}

path "transit/decrypt/rehab-funds" {
  capabilities = ["update"]
}

path "transit/rewrap/rehab-funds" {
  capabilities = ["update"]
}
