#!/usr/bin/env python
import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["test"]:
        # The suite runs on settings of its own, whatever the developer's .env says.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    else:
        from smsproject.env_file import read_env_file

        read_env_file()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
