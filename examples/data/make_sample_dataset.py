"""Write ``support_chat.jsonl``: the bundled sample chat dataset used by the demo and the trainer tests.

Conversations between customers and "Sol", the support assistant of Lumio (a fictional maker of smart desk
lamps and the Lumio app). Every line is written from the templates below, so the file is ours, small enough
to commit, and identical on every run: the same seed, the same bytes.

The phrasing varies (several ways to ask, several answers, products, order numbers, names, follow-ups, with
and without a system prompt) so it reads like a support log, while the answers stay regular enough that a
tiny model's loss falls within a few dozen steps.

Usage::

    python examples/data/make_sample_dataset.py            # (re)write support_chat.jsonl beside this script
    python examples/data/make_sample_dataset.py --check    # exit 1 when the committed file is out of date
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 20240611
EXAMPLES = 420
OUTPUT = Path(__file__).with_name("support_chat.jsonl")

SYSTEM_PROMPTS = (
    "You are Sol, the friendly support assistant for Lumio smart lamps. Be concise and kind.",
    "You are Sol from Lumio support. Answer clearly, in a few sentences, and offer further help.",
)

PRODUCTS = ("Lumio Mini", "Lumio Desk", "Lumio Arc", "Lumio Halo")
NAMES = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Femi",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Marco",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Yara",
    "Zoe",
)
PLATFORMS = ("iPhone", "Android phone", "iPad")
COUNTRIES = ("Germany", "Canada", "Japan", "Brazil", "Kenya", "Australia", "Spain", "India")
COLOURS = ("warm white", "cool white", "amber", "soft blue", "sunset orange")

OPENERS = ("Happy to help!", "Thanks for reaching out!", "Thanks for your message.", "I can help with that.")
CLOSERS = (
    "Is there anything else I can help with?",
    "Let me know if anything is unclear.",
    "Anything else I can do for you today?",
)

# Each topic: ways a customer asks, and the answers Sol gives. {product}, {order}, {platform}, {country},
# {colour} and {name} are filled in per example; an optional follow-up continues the conversation.
TOPICS: tuple[dict[str, tuple[str, ...]], ...] = (
    {
        "asks": (
            "How do I pair my {product} with the app?",
            "My new {product} won't show up in the Lumio app. How do I connect it?",
            "I just unboxed a {product}. What's the first step to set it up on my {platform}?",
        ),
        "answers": (
            "Open the Lumio app on your {platform}, tap Add Lamp, then hold the power button on your {product} "
            "for three seconds until the light pulses blue. The app finds it within a minute.",
            "Plug in your {product}, open the Lumio app, tap Add Lamp and hold the power button for three "
            "seconds. When the light pulses blue, choose it in the list and follow the steps.",
        ),
        "follow_ups": ("It still doesn't appear. What now?",),
        "follow_answers": (
            "Make sure Bluetooth is on and your {platform} is within two metres of the lamp. If it still "
            "doesn't appear, unplug the lamp for ten seconds and try again.",
        ),
    },
    {
        "asks": (
            "Where is my order {order}?",
            "Can you tell me when order {order} will arrive?",
            "I ordered a {product} last week (order {order}) and haven't got it yet.",
        ),
        "answers": (
            "Order {order} shipped two days ago and is on its way. You can follow it from the link in your "
            "shipping email; most orders arrive within five working days.",
            "I checked order {order}: it has left our warehouse and should arrive within five working days. "
            "The tracking link is in your shipping email.",
        ),
        "follow_ups": ("Can I change the delivery address?",),
        "follow_answers": (
            "Yes, as long as the parcel has not been delivered. Reply with the new address and I will ask the "
            "carrier to redirect order {order}.",
        ),
    },
    {
        "asks": (
            "Do you ship to {country}?",
            "How long does shipping to {country} take?",
            "Is there free delivery to {country}?",
        ),
        "answers": (
            "Yes, we ship to {country}. Delivery usually takes five to ten working days, and shipping is free "
            "on orders over 50 euros.",
            "We do ship to {country}! Expect five to ten working days. Orders over 50 euros ship for free.",
        ),
        "follow_ups": ("Will I have to pay import fees?",),
        "follow_answers": (
            "Import fees depend on local rules in {country}. Our checkout shows an estimate before you pay, so "
            "there are no surprises.",
        ),
    },
    {
        "asks": (
            "How do I return my {product}?",
            "I'd like to send back my {product}. What's your return policy?",
            "Can I return a {product} I bought three weeks ago?",
        ),
        "answers": (
            "You can return your {product} within 30 days of delivery. Go to Orders in your Lumio account, "
            "choose Return, and print the free label. Refunds arrive within five working days of us receiving it.",
            "Returns are free within 30 days of delivery. Open Orders in your account, pick the {product} and "
            "choose Return to get a prepaid label.",
        ),
        "follow_ups": ("Do I need the original box?",),
        "follow_answers": ("The original box is nice but not required. Any sturdy box with some padding works fine.",),
    },
    {
        "asks": (
            "I forgot my password.",
            "How do I reset my Lumio password?",
            "I can't log in to the Lumio app on my {platform}.",
        ),
        "answers": (
            "On the sign-in screen, tap Forgot password and enter your email. We send a reset link that works "
            "for one hour. Check your spam folder if it doesn't arrive.",
            "Tap Forgot password on the sign-in screen and enter the email on your account. The reset link we "
            "send is valid for one hour.",
        ),
        "follow_ups": ("The email never arrived.",),
        "follow_answers": (
            "Please check the spam folder and make sure the address is spelled correctly. If it is still "
            "missing after ten minutes, I can send the link again.",
        ),
    },
    {
        "asks": (
            "How do I update the firmware on my {product}?",
            "Is there a firmware update for the {product}?",
            "My {product} says an update failed. What should I do?",
        ),
        "answers": (
            "Open the Lumio app, tap your {product}, then Settings and Firmware. If an update is available, tap "
            "Install and keep the lamp plugged in; it takes about three minutes.",
            "Firmware updates live in the app: tap your {product}, open Settings, then Firmware, and tap Install. "
            "Keep the lamp powered until the light stops pulsing.",
        ),
        "follow_ups": ("It got stuck halfway.",),
        "follow_answers": (
            "Unplug the {product} for ten seconds, plug it back in and start the update again from the app. "
            "Your settings are kept.",
        ),
    },
    {
        "asks": (
            "How do I set a wake-up schedule?",
            "Can my {product} turn on by itself in the morning?",
            "I want the lamp to fade in at 7 am on weekdays.",
        ),
        "answers": (
            "Yes! In the Lumio app, tap your {product}, then Schedules and Add. Pick the time, the days and the "
            "colour, for example {colour}, and turn on Fade In.",
            "Open Schedules for your {product} in the app, tap Add, and choose the time and weekdays. Turn on "
            "Fade In for a gentle start in {colour}.",
        ),
        "follow_ups": ("Does the schedule work if my phone is off?",),
        "follow_answers": ("Yes. Schedules are stored on the lamp itself, so they run even when your phone is off.",),
    },
    {
        "asks": (
            "How do I change the colour of my {product}?",
            "Can the {product} do {colour} light?",
            "What colours does the {product} support?",
        ),
        "answers": (
            "Your {product} supports the full colour range, including {colour}. In the app, tap the lamp and "
            "drag the colour wheel, or pick a saved scene.",
            "Tap your {product} in the Lumio app and use the colour wheel; {colour} is one of the saved scenes. "
            "You can save your own scenes too.",
        ),
        "follow_ups": ("Can I save it as a favourite?",),
        "follow_answers": (
            "Yes. After choosing the colour, tap the star to save it as a scene; it appears at the top of the "
            "lamp's screen.",
        ),
    },
    {
        "asks": (
            "What does Lumio Plus cost?",
            "What do I get with Lumio Plus?",
            "Is Lumio Plus worth it?",
        ),
        "answers": (
            "Lumio Plus costs 4.99 euros a month or 49 euros a year. It adds sunrise programs, unlimited "
            "scenes and an energy report. Every lamp works fully without it.",
            "Lumio Plus is 4.99 euros a month, or 49 euros a year. You get sunrise programs, unlimited scenes "
            "and an energy report; the basics stay free.",
        ),
        "follow_ups": ("Is there a free trial?",),
        "follow_answers": ("Yes, Lumio Plus comes with a 14-day free trial. You can cancel any time before it ends.",),
    },
    {
        "asks": (
            "How do I cancel Lumio Plus?",
            "Please cancel my Lumio Plus subscription.",
            "I want to stop paying for Lumio Plus.",
        ),
        "answers": (
            "You can cancel in the app under Account, then Subscription, then Cancel. Lumio Plus stays active "
            "until the end of the period you already paid for.",
            "Go to Account, Subscription and tap Cancel. You keep Lumio Plus until the end of your current "
            "billing period, and you won't be charged again.",
        ),
        "follow_ups": ("Will I lose my scenes?",),
        "follow_answers": (
            "Your first five scenes stay. Any extra scenes are kept for 90 days in case you come back.",
        ),
    },
    {
        "asks": (
            "I was charged twice this month.",
            "Why was I billed twice for Lumio Plus?",
            "There are two Lumio charges on my card.",
        ),
        "answers": (
            "I'm sorry about that! A double charge usually means two accounts have Lumio Plus. I've flagged "
            "it, and the extra charge will be refunded within five working days.",
            "Sorry for the trouble. I see two payments, and I've started a refund for the duplicate. It reaches "
            "your card within five working days.",
        ),
        "follow_ups": ("Will I get an email about the refund?",),
        "follow_answers": ("Yes, you'll get a confirmation email as soon as the refund is processed.",),
    },
    {
        "asks": (
            "My {product} keeps disconnecting from Wi-Fi.",
            "The app says my {product} is offline.",
            "Why does my lamp drop off the network every night?",
        ),
        "answers": (
            "Lumio lamps use 2.4 GHz Wi-Fi. Check that your router has a 2.4 GHz band turned on, then in the "
            "app tap your {product}, Settings, Wi-Fi, and reconnect.",
            "Most disconnects come from the router. Make sure the 2.4 GHz band is on and the {product} is "
            "within range, then reconnect it under Settings and Wi-Fi in the app.",
        ),
        "follow_ups": ("It still drops sometimes.",),
        "follow_answers": (
            "Try giving the lamp a fixed address in your router settings, or move the router a little closer. "
            "If that doesn't help, I can arrange a replacement.",
        ),
    },
    {
        "asks": (
            "How do I factory reset my {product}?",
            "I'm giving my {product} to a friend. How do I reset it?",
            "Can I reset the lamp to its original settings?",
        ),
        "answers": (
            "Hold the power button on your {product} for ten seconds until the light blinks red three times. "
            "The lamp then forgets its Wi-Fi and schedules, ready for a new owner.",
            "Press and hold the power button for ten seconds; three red blinks confirm the reset. Then remove "
            "the {product} from your account in the app.",
        ),
        "follow_ups": ("Does my friend need a new account?",),
        "follow_answers": ("Yes, your friend signs in with their own Lumio account and adds the lamp as new.",),
    },
    {
        "asks": (
            "What's the warranty on the {product}?",
            "My {product} stopped working after eight months. Is it covered?",
            "Does Lumio offer a warranty?",
        ),
        "answers": (
            "Every {product} has a two-year warranty. If it stops working, send us your order number and a "
            "short video, and we'll replace it free of charge.",
            "Yes, the {product} is covered for two years. Share your order number and a short description, and "
            "we'll send a replacement.",
        ),
        "follow_ups": ("Do I have to send the old one back?",),
        "follow_answers": ("Yes, please. The replacement box includes a prepaid label for the old lamp.",),
    },
    {
        "asks": (
            "How do I delete my Lumio account?",
            "Please delete all my data.",
            "Can I download the data you have about me?",
        ),
        "answers": (
            "In the app, open Account, then Privacy. Tap Export Data for a copy of your data, or Delete Account "
            "to remove everything. Deletion is final after 30 days.",
            "Open Account and Privacy in the app. Export Data emails you a copy; Delete Account removes your "
            "data for good after a 30-day grace period.",
        ),
        "follow_ups": ("Can I undo the deletion?",),
        "follow_answers": ("Yes, signing in within 30 days cancels the deletion. After that it can't be undone.",),
    },
    {
        "asks": (
            "Does the {product} work with voice assistants?",
            "Can I control my {product} with my voice?",
            "Does Lumio support Alexa or Google Home?",
        ),
        "answers": (
            "Yes! The {product} works with Alexa and Google Home. In the app, open Account, then Connected "
            "Services, and link your voice assistant.",
            "It does. Link Alexa or Google Home under Account and Connected Services in the Lumio app, then "
            "say, for example, turn the {product} to {colour}.",
        ),
        "follow_ups": ("What about Apple Home?",),
        "follow_answers": ("Apple Home support is planned for a firmware update later this year.",),
    },
)

GREETINGS = ("Hi!", "Hello there.", "Hey, quick question.", "Hi Sol.", "Good morning!")
GREETING_REPLIES = ("Hi {name}! How can I help you today?", "Hello {name}! What can I do for you?")
THANKS = ("Thanks!", "Great, thank you.", "Perfect, thanks a lot.", "That worked, thanks!")
THANKS_REPLIES = ("You're welcome, {name}! Enjoy your {product}.", "Glad I could help, {name}. Have a bright day!")


def _slots(rng: random.Random) -> dict[str, str]:
    return {
        "product": rng.choice(PRODUCTS),
        "order": f"LM-{rng.randint(10000, 99999)}",
        "platform": rng.choice(PLATFORMS),
        "country": rng.choice(COUNTRIES),
        "colour": rng.choice(COLOURS),
        "name": rng.choice(NAMES),
    }


def _answer(rng: random.Random, body: str) -> str:
    """An answer framed the way Sol talks: usually an opener, sometimes a closing offer of more help."""
    opener = rng.choice(OPENERS) + " " if rng.random() < 0.7 else ""
    closer = " " + rng.choice(CLOSERS) if rng.random() < 0.5 else ""
    return opener + body + closer


def _conversation(rng: random.Random) -> list[dict[str, str]]:
    topic = rng.choice(TOPICS)
    slots = _slots(rng)
    messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    if rng.random() < 0.2:
        messages.append({"role": "user", "content": rng.choice(GREETINGS)})
        messages.append({"role": "assistant", "content": rng.choice(GREETING_REPLIES).format(**slots)})
    messages.append({"role": "user", "content": rng.choice(topic["asks"]).format(**slots)})
    messages.append({"role": "assistant", "content": _answer(rng, rng.choice(topic["answers"]).format(**slots))})
    if rng.random() < 0.3:
        messages.append({"role": "user", "content": rng.choice(topic["follow_ups"]).format(**slots)})
        messages.append({"role": "assistant", "content": rng.choice(topic["follow_answers"]).format(**slots)})
    if rng.random() < 0.2:
        messages.append({"role": "user", "content": rng.choice(THANKS)})
        messages.append({"role": "assistant", "content": rng.choice(THANKS_REPLIES).format(**slots)})
    return messages


def render(examples: int = EXAMPLES, seed: int = SEED) -> str:
    """The dataset as JSONL text: one ``{"messages": [...]}`` chat record a line."""
    rng = random.Random(seed)
    lines = [json.dumps({"messages": _conversation(rng)}, ensure_ascii=False) for _ in range(examples)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} examples ({len(text.encode()):,} bytes) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
