"""The system ip-monitor replaces, for comparison: a loop that sends one message per staff
member through Python's smtplib, a new connection for each (as Django's send_mail does
without a shared connection), into the same SMTP sink as the fan-out bench.

Usage: python3 benches/scripts/seed_baseline.py HOST:PORT COUNT SIZE
Prints the messages per second.
"""

import smtplib
import sys
import time


def main() -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    count, size = int(sys.argv[2]), int(sys.argv[3])
    header = "From: noreply@example.com\r\nTo: staff@example.com\r\nSubject: new address\r\n\r\n"
    body = header + "x" * max(0, size - len(header))
    started = time.monotonic()
    for i in range(count):
        with smtplib.SMTP(host, int(port)) as smtp:
            smtp.sendmail("noreply@example.com", [f"staff{i}@example.com"], body)
    elapsed = time.monotonic() - started
    print(f"{count / elapsed:.0f}")


if __name__ == "__main__":
    main()
