"""`python -m webapp demo-cashout`: create a cash-out at the running sandbox with the dev stack's keys.

It signs exactly as the app does, so a developer can watch an order move on the sandbox page.
"""

import json
import uuid
from pathlib import Path

from webapp.alixpay.client import AlixPayClient
from webapp.alixpay.crypto import Signer, Verifier
from webapp.alixpay.schemas import OrderObject
from webapp.config import DEV_ALIXPAY_WEBHOOK_SECRET_KEY
from webapp.orders.models import Order


async def create_demo_cashout(
    stack_file: Path, *, amount: int, account_number: str, recipient_name: str, email: str
) -> tuple[OrderObject, str]:
    sandbox = json.loads(stack_file.read_text())["sandbox"]
    client = AlixPayClient(
        base_url=sandbox["url"],
        partner_code=sandbox["partner_code"],
        secret_key=sandbox["secret_key"],
        webhook_secret_key=DEV_ALIXPAY_WEBHOOK_SECRET_KEY,
        signer=Signer.from_file(Path(sandbox["partner_private_key_file"])),
        verifier=Verifier.from_files([Path(sandbox["alix_public_key_file"])]),
    )
    try:
        order = await client.create_cashout(
            Order(
                external_order_id=str(uuid.uuid4()),
                user_email=email,
                fiat_amount=amount,
                bank_code="TECHCOMBANK",
                account_number=account_number,
                recipient_name=recipient_name,
                transfer_content="RUT TIEN DEMO",
            )
        )
    finally:
        await client.aclose()
    return order, sandbox["url"]
