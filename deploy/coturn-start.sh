#!/bin/sh
# Starts coturn with its static-auth-secret from a file rather than its
# command line, where every user of the host could read it (ps). coturn
# reads the secret only from its command line or its configuration file, so
# this writes a private copy of the configuration with the secret added and
# starts coturn on the copy. Used by deploy/compose.yaml (the secret is the
# compose secret turn_secret); the paths can be changed for a test.
#
#   TURN_SECRET_FILE  the secret, one line (default /run/secrets/turn_secret)
#   COTURN_CONFIG     the configuration without its secret (default
#                     /etc/coturn/turnserver.conf); its static-auth-secret
#                     lines are dropped: coturn accepts every secret it is
#                     given, and the sample's placeholder is public
#   COTURN_RUN_DIR    where the private copy is written (default /tmp)
#
# Arguments are passed on to turnserver.
set -eu
secret_file=${TURN_SECRET_FILE:-/run/secrets/turn_secret}
config=${COTURN_CONFIG:-/etc/coturn/turnserver.conf}
run_dir=${COTURN_RUN_DIR:-/tmp}

# read and printf are the shell's own: the secret is on no command line.
IFS= read -r secret <"$secret_file" || [ -n "${secret:-}" ]
if [ ${#secret} -lt 16 ]; then
	echo "coturn-start: the secret in $secret_file is shorter than 16 characters" >&2
	exit 1
fi
umask 077
copy=$run_dir/turnserver.conf
grep -v '^[[:space:]]*static-auth-secret' "$config" >"$copy" || true
printf 'static-auth-secret=%s\n' "$secret" >>"$copy"
exec turnserver -c "$copy" "$@"
