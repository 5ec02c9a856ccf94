#!/bin/sh
# Container entry point. With no arguments, or only options: migrate, make sure the admin account exists, then
# replace this shell with the gateway (so it gets SIGTERM directly), passing the options on, e.g.
# `docker run rusta --workers 2`. With a command (`celery -A rusta worker -l info`), run that command instead.
set -eu

case "${1:-}" in
    "" | -*)
        python manage.py migrate --noinput
        python manage.py ensureadmin
        exec python manage.py runproxy --host 0.0.0.0 "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
