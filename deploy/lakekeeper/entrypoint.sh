# Run by /bin/busybox sh (the image has no other shell). Reads Lakekeeper's secrets from its own
# folder; `migrate` is retried (Postgres may still be restarting after its init scripts, and
# Lakekeeper's migrate does not retry by itself), anything else is exec'ed.
bb=/bin/busybox
secrets=/run/lakewire-secrets
LAKEKEEPER__PG_PASSWORD="$($bb cat "$secrets/postgres_password")"
LAKEKEEPER__PG_ENCRYPTION_KEY="$($bb cat "$secrets/lakekeeper_encryption_key")"
export LAKEKEEPER__PG_PASSWORD LAKEKEEPER__PG_ENCRYPTION_KEY
if [ "$1" = "migrate" ]; then
  attempt=1
  while [ "$attempt" -le 30 ]; do
    /home/nonroot/lakekeeper migrate && exit 0
    echo "lakekeeper migrate: attempt $attempt failed; retrying in 2 s" >&2
    attempt=$((attempt + 1))
    $bb sleep 2
  done
  exit 1
fi
exec /home/nonroot/lakekeeper "$@"
