raise SystemExit("test_sendmail_clients.py is not written yet")
