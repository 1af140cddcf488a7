"""A county's feed reader in Python: nats-py with nkeys, written from docs/county-integration.md.

It connects with the county's NATS identity (its nkey seed and inbox prefix), binds to the
county's pull consumer `feed-<code>` on stream `FEEDS`, and handles every message type the feed
carries: a story (`…story`, `StoryDelivery`) is stored, its receipt sent (and, for a withdrawal,
its takedown confirmed), then acked; a decision on one of the county's own stories (`…decision`,
`DecisionNotice`) is shown, then acked. Each message it handled is printed as one JSON line.

Make the message classes once, from Bashu's proto/ folder:

    python3 -m grpc_tools.protoc -I proto --python_out=gen \
        proto/bashu/story/v1/story.proto proto/bashu/story/v1/events.proto

Then (PYTHONPATH=gen, nats-py and nkeys installed):

    python3 examples/county/feed_reader.py --server nats://127.0.0.1:4222 --county 500153 --seed 500153.nk
"""

import argparse
import asyncio
import json
import sys

import nats
from nats.errors import TimeoutError as NoMessages
from google.protobuf.timestamp_pb2 import Timestamp

from bashu.story.v1 import events_pb2, story_pb2


def now():
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def say(line):
    print(json.dumps(line, ensure_ascii=False), flush=True)


async def confirm(js, subject, message_id, message):
    """Publishes through JetStream and waits for the stream's acknowledgement; the Nats-Msg-Id makes
    a retry count once."""
    await js.publish(subject, message.SerializeToString(), headers={"Nats-Msg-Id": message_id})


async def on_story(js, county, payload):
    delivery = events_pb2.StoryDelivery.FromString(payload)
    story = delivery.story
    key = f"{story.origin_county}.{story.id}.{story.version}"
    # Store it in the CMS here; only then confirm and ack.
    receipt = events_pb2.StoryReceipt(
        story_id=story.id, version=story.version, origin_county=story.origin_county, received_at=now()
    )
    await confirm(js, f"bashu.story.receipt.{county}", f"receipt.{county}.{key}", receipt)
    withdrawn = story.status == story_pb2.PUBLICATION_STATUS_CANCELED
    if withdrawn:
        # Take it down here; then confirm the takedown.
        takedown = events_pb2.TakedownConfirmation(
            story_id=story.id, version=story.version, origin_county=story.origin_county, confirmed_at=now()
        )
        await confirm(js, f"bashu.story.takedown.{county}", f"takedown.{county}.{key}", takedown)
    say({"type": "story", "key": key, "headline": story.headline, "withdrawn": withdrawn})


def on_decision(payload):
    notice = events_pb2.DecisionNotice.FromString(payload)
    decision = notice.decision
    story = decision.story
    say({
        "type": "decision",
        "key": f"{story.origin_county}.{story.id}.{story.version}",
        "verdict": events_pb2.Verdict.Name(decision.verdict),
        "reason": decision.reason,
    })


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--county", required=True, help="your GB/T 2260 code")
    parser.add_argument("--seed", required=True, help="the file holding your nkey seed (SU…)")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many (0: never)")
    args = parser.parse_args()

    nc = await nats.connect(args.server, nkeys_seed=args.seed, inbox_prefix=f"_INBOX_{args.county}")
    js = nc.jetstream()
    # Bind by name: a county may not look up streams or create consumers.
    feed = await js.pull_subscribe_bind(f"feed-{args.county}", "FEEDS")
    handled = 0
    while args.max_messages == 0 or handled < args.max_messages:
        try:
            messages = await feed.fetch(batch=10, timeout=5)
        except NoMessages:
            continue
        for message in messages:
            kind = message.subject.rsplit(".", 1)[-1]
            if kind == "story":
                await on_story(js, args.county, message.data)
            elif kind == "decision":
                on_decision(message.data)
            else:
                # A type this reader does not know yet: left for a newer reader, not lost.
                say({"type": "unknown", "subject": message.subject})
                await message.nak(delay=3600)
                continue
            await message.ack_sync()
            handled += 1
    await nc.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
