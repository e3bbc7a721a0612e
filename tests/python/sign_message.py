#!/usr/bin/env python3
"""Signs the text on standard input the way a wallet's personal_sign does (EIP-191 version 0x45),
with Python's eth-account: an implementation independent of the JavaScript wallet libraries.

The private key comes from the environment (SIGNER_PRIVATE_KEY=0x...), never from the command
line. Prints the 65-byte signature as 0x-prefixed hex; with --address, prints the key's EIP-55
address instead (and reads no input).

    SIGNER_PRIVATE_KEY=0x... python3 tests/python/sign_message.py < message.txt
"""

import argparse
import os
import sys

from eth_account import Account
from eth_account.messages import encode_defunct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="store_true", help="print the signer's address and exit")
    args = parser.parse_args()

    key = os.environ.get("SIGNER_PRIVATE_KEY")
    if not key:
        print("set SIGNER_PRIVATE_KEY to a 0x-prefixed private key", file=sys.stderr)
        return 2
    account = Account.from_key(key)
    if args.address:
        print(account.address)
        return 0

    # The exact bytes: no newline added or stripped, UTF-8 as a wallet encodes the text.
    text = sys.stdin.buffer.read().decode("utf-8")
    signed = account.sign_message(encode_defunct(text=text))
    print("0x" + bytes(signed.signature).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
