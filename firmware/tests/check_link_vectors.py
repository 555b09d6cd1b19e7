# Under MicroPython: the link protocol must produce and read the shared test vectors byte for byte,
# and reject the frames of another session, another link version or an unknown type.
import binascii
import json
import sys

import link

vectors = json.load(open("/test_vectors.json"))
assert vectors["version"] == link.VERSION
for case in vectors["crc32"]:
    after = binascii.unhexlify(case.get("after_hex", ""))
    assert link.crc32(binascii.unhexlify(case["data_hex"]), link.crc32(after) if after else 0) == case["crc"]
session = binascii.unhexlify(vectors["session_nonce_hex"])
checked = 0
for case in vectors["frames"]:
    body = binascii.unhexlify(case["body_hex"])
    nonce = binascii.unhexlify(case["nonce_hex"])
    frame = link.encode_frame(case["type"], case["seq"], body, nonce)
    assert binascii.hexlify(frame).decode() == case["frame_hex"], case["name"]
    decoder = link.FrameDecoder(nonce)
    assert decoder.feed(b"\x13\x37 garbage \x00" + frame) == [(case["type"], case["seq"], body)], case["name"]
    if case["type"] == link.HELLO:
        assert link.read_hello(body)[1] == session, case["name"]
    checked += 1
for case in vectors["rejected"]:
    decoder = link.FrameDecoder(binascii.unhexlify(case["nonce_hex"]))
    assert decoder.feed(binascii.unhexlify(case["frame_hex"])) == [] and decoder.rejected == 1, case["name"]
    assert decoder.other_version == case.get("other_version"), case["name"]
    checked += 1
print(sys.implementation.name, "vectors ok:", checked)
