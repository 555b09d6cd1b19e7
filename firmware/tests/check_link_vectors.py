# Under MicroPython: the link protocol must produce and read the shared test vectors byte for byte.
import binascii
import json
import sys

import link

vectors = json.load(open("/test_vectors.json"))
for case in vectors["crc32"]:
    assert link.crc32(binascii.unhexlify(case["data_hex"])) == case["crc"]
decoder = link.FrameDecoder()
checked = 0
for case in vectors["frames"]:
    body = binascii.unhexlify(case["body_hex"])
    frame = link.encode_frame(case["type"], case["seq"], body)
    assert binascii.hexlify(frame).decode() == case["frame_hex"], case["name"]
    assert decoder.feed(b"\x13\x37 garbage \x00" + frame) == [(case["type"], case["seq"], body)], case["name"]
    checked += 1
print(sys.implementation.name, "vectors ok:", checked)
