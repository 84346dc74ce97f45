raise SystemExit("test_storage_faults.py is not written yet")
