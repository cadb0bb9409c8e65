#!/usr/bin/env python3
"""The asyncio_echo.py Protocol server on uvloop (libuv) instead of asyncio's loop.

Needs an interpreter that can import uvloop (Debian: python3-uvloop, for
/usr/bin/python3); run.ts finds one.

Usage: python3 uvloop_echo.py PORT   (0 = let the system choose)
"""
import os
import sys

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asyncio_echo  # noqa: E402  (same server, only the loop differs)

if __name__ == "__main__":
    asyncio_echo.main(uvloop.new_event_loop)
