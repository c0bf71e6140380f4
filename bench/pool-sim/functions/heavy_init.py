"""A function with real initialization, as most have: modules beyond the template's preloads and
a table built at load time (a stand-in for a model or a config parsed once)."""
import difflib
import doctest
import http.server
import mailbox
import multiprocessing
import pdb
import pickletools
import pydoc
import smtplib
import unittest
import xml.sax
import xmlrpc.client

TABLE = {i: str(i) * 3 for i in range(300000)}


def main(args):
    key = int(args.get("key", 7))
    return {"value": TABLE.get(key), "size": len(TABLE)}
