# Run by /bin/busybox sh (the image has no other shell). Reads Lakekeeper's secrets from its own
# folder; `migrate` is retried (Postgres may still be restarting after its init scripts, and
# Lakekeeper's migrate does not retry by itself), anything else is exec'ed.
# The LAKEKEEPER_ENTRY_* variables exist for tests/test_compose.py; the image sets none.
bb="${LAKEKEEPER_ENTRY_BUSYBOX-/bin/busybox}"
lakekeeper="${LAKEKEEPER_ENTRY_BIN:-/home/nonroot/lakekeeper}"
secrets="${LAKEKEEPER_ENTRY_SECRETS:-/run/lakewire-secrets}"
wait_s="${LAKEKEEPER_ENTRY_WAIT:-2}"
LAKEKEEPER__PG_PASSWORD="$($bb cat "$secrets/postgres_password")" || exit 1
LAKEKEEPER__PG_ENCRYPTION_KEY="$($bb cat "$secrets/lakekeeper_encryption_key")" || exit 1
export LAKEKEEPER__PG_PASSWORD LAKEKEEPER__PG_ENCRYPTION_KEY
if [ "$1" = "migrate" ]; then
  attempt=1
  while [ "$attempt" -le 30 ]; do
    "$lakekeeper" migrate && exit 0
    echo "lakekeeper migrate: attempt $attempt failed; retrying in $wait_s s" >&2
    attempt=$((attempt + 1))
    $bb sleep "$wait_s"
  done
  exit 1
fi
exec "$lakekeeper" "$@"
