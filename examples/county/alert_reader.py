"""A county's alert reader in Python: nats-py with nkeys, written from docs/alerts.md §5.

It connects with the county's NATS identity (its nkey seed and inbox prefix), binds to the
county's pull consumer `alerts-<code>` on stream `ALERT_FEEDS`, and for each alert: confirms
receipt on `bashu.alert.receipt.<code>` (the county becomes RECEIVED), acknowledges on
`bashu.alert.ack.<code>` in the name of the person on duty when one is given (ACKNOWLEDGED), and
acks the message. Both go through JetStream with the documented `Nats-Msg-Id`, so a retry counts
once; the same alert arriving again (a re-send) is answered the same way. Each alert it handled
is printed as one JSON line.

Make the message classes once, from Bashu's proto/ folder:

    python3 -m grpc_tools.protoc -I proto --python_out=gen \
        proto/bashu/alert/v1/alert.proto

Then (PYTHONPATH=gen, nats-py and nkeys installed):

    python3 examples/county/alert_reader.py --server nats://127.0.0.1:4222 --county 510781 \
        --seed 510781.nk --on-duty "值班员 李"
"""

import argparse
import asyncio
import json
import sys

import nats
from nats.errors import TimeoutError as NoMessages
from google.protobuf.timestamp_pb2 import Timestamp

from bashu.alert.v1 import alert_pb2


def now():
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


async def confirm(js, subject, message_id, message):
    """Publishes through JetStream and waits for the stream's acknowledgement."""
    await js.publish(subject, message.SerializeToString(), headers={"Nats-Msg-Id": message_id})


async def on_alert(js, county, on_duty, payload):
    delivery = alert_pb2.AlertDelivery.FromString(payload)
    key = delivery.alert_key
    # Show it on the duty screen, sound the alarm, here; then confirm receipt.
    receipt = alert_pb2.AlertReceipt(alert_key=key, identifier=delivery.alert.identifier, received_at=now())
    await confirm(js, f"bashu.alert.receipt.{county}", f"alert.receipt.{county}.{key}", receipt)
    if on_duty:
        ack = alert_pb2.AlertAcknowledgement(
            alert_key=key, identifier=delivery.alert.identifier, acknowledged_by=on_duty, acknowledged_at=now()
        )
        await confirm(js, f"bashu.alert.ack.{county}", f"alert.ack.{county}.{key}", ack)
    info = delivery.alert.infos[0] if delivery.alert.infos else None
    print(json.dumps({
        "alertKey": key,
        "chainKey": delivery.chain_key,
        "msgType": alert_pb2.MsgType.Name(delivery.alert.msg_type),
        "headline": info.headline if info else "",
        "resend": delivery.resend,
        "acknowledged": bool(on_duty),
    }, ensure_ascii=False), flush=True)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--county", required=True, help="your GB/T 2260 code")
    parser.add_argument("--seed", required=True, help="the file holding your nkey seed (SU…)")
    parser.add_argument("--on-duty", default="", help="acknowledge in this person's name (empty: receipt only)")
    parser.add_argument("--max-alerts", type=int, default=0, help="stop after this many (0: never)")
    args = parser.parse_args()

    nc = await nats.connect(args.server, nkeys_seed=args.seed, inbox_prefix=f"_INBOX_{args.county}")
    js = nc.jetstream()
    alerts = await js.pull_subscribe_bind(f"alerts-{args.county}", "ALERT_FEEDS")
    handled = 0
    while args.max_alerts == 0 or handled < args.max_alerts:
        try:
            messages = await alerts.fetch(batch=10, timeout=5)
        except NoMessages:
            continue
        for message in messages:
            await on_alert(js, args.county, args.on_duty, message.data)
            await message.ack_sync()
            handled += 1
    await nc.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
