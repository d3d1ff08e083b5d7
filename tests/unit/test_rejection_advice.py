"""The phone turns the server's rejection sentences into advice a courier can act on."""

from courier_app.flows.rejections import advice
from shared.i18n import t


def test_each_kind_of_rejection_gets_its_advice():
    cases = {
        "shipment 1234567890123 is not assigned to courier:3": "reject.not_assigned",
        "prev 0a1b2c3d4e5f… is not the current head 9f8e7d6c5b4a…: the chain has moved on; sync first and "
        "record anew": "reject.chain_moved",
        "conflict: an event with this id and a different hash was accepted before": "reject.conflict",
        "illegal transition: the shipment is delivered, a final state: nothing moves out of it": (
            "reject.illegal"
        ),
        "unknown shipment 1234567890123": "reject.unknown",
        "signature: bad signature": "reject.device",
        "device key abcdefgh… is not enrolled to courier:3 (POST /api/v1/devices)": "reject.device",
        "picked_up needs the other party's signature in attachments.signature": "reject.incomplete",
        "something new the server says one day": "reject.other",
    }
    for reason, key in cases.items():
        assert advice(reason) == key, reason
        assert t(key, "vi") != key and t(key, "en") != key
