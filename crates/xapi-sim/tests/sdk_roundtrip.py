"""Drives xapi-sim with the official XenAPI SDK (XML-RPC) and curl, as a
XenServer admin script would: log in, find the default SR, create a VDI,
upload a VHD over TLS, follow the task, export it back as raw and as VHD.

Usage: sdk_roundtrip.py URL VHD SIZE OUT_RAW OUT_VHD
The CA file comes through SSL_CERT_FILE (certificate verified, not ignored).
Prints one JSON object with what the Rust test checks.
"""
import json
import os
import subprocess
import sys
import time

import XenAPI

url, vhd, size, out_raw, out_vhd = sys.argv[1:]
cafile = os.environ["SSL_CERT_FILE"]

session = XenAPI.Session(url)
session.xenapi.login_with_password("root", "xenlift", "2.21", "xenlift-sdk-test")
x = session.xenapi
sid = session._session

pool = x.pool.get_all()[0]
sr = x.pool.get_default_SR(pool)
sr_record = x.SR.get_record(sr)
vdi = x.VDI.create({
    "name_label": "sdk upload",
    "name_description": "",
    "SR": sr,
    "virtual_size": size,
    "type": "user",
    "sharable": False,
    "read_only": False,
    "other_config": {},
})
vdi_uuid = x.VDI.get_uuid(vdi)
task = x.task.create("upload", "sdk test")

# curl sends Expect: 100-continue for big bodies; XAPI answers 200 at once.
subprocess.run(
    ["curl", "-sS", "--fail", "--cacert", cafile, "-T", vhd,
     f"{url}/import_raw_vdi?session_id={sid}&vdi={vdi}&format=vhd&task_id={task}"],
    check=True, stdout=subprocess.DEVNULL)

for _ in range(600):
    status = x.task.get_status(task)
    if status != "pending":
        break
    time.sleep(0.1)
result = x.task.get_result(task)
error_info = x.task.get_error_info(task)
progress = x.task.get_progress(task)

for fmt, out in (("raw", out_raw), ("vhd", out_vhd)):
    subprocess.run(
        ["curl", "-sS", "--fail", "--cacert", cafile, "-o", out,
         f"{url}/export_raw_vdi?session_id={sid}&vdi={vdi_uuid}&format={fmt}"],
        check=True)

try:
    x.VDI.get_record("OpaqueRef:does-not-exist")
    bad_ref = None
except XenAPI.Failure as failure:
    bad_ref = failure.details

certificates = list(x.Certificate.get_all_records().values())
api_version = session.API_version
virtual_size = x.VDI.get_virtual_size(vdi)
session.xenapi.session.logout()

print(json.dumps({
    "sr_type": sr_record["type"],
    "sr_name": sr_record["name_label"],
    "virtual_size": virtual_size,
    "status": status,
    "result": result,
    "error_info": error_info,
    "progress": progress,
    "vdi": vdi,
    "bad_ref": bad_ref,
    "fingerprints": [c["fingerprint_sha256"] for c in certificates],
    "api_version": api_version,
}))
