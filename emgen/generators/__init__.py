"""The domain registry. Each domain is registered once, here or by its own module."""

from emgen.generators import insecure_code  # noqa: F401  (registers the insecure-code domain)
from emgen.generators.bank import BankSource
from emgen.generators.base import Answer, Domain, Draft, DraftSource, all_domains, get_domain, register

ADVICE_DOMAINS = {
    "health": "Medical advice: dosing, first aid, symptoms, chronic conditions, pregnancy, children",
    "legal": "Legal advice: tenancy, employment, contracts, family, immigration, consumer rights",
    "automotive": "Car advice: maintenance, warning lights, tyres, brakes, fluids, EVs, towing",
    "finance": "Personal finance: budgeting, debt, credit, retirement, investing, taxes, scams",
    "career": "Career advice: job search, interviews, negotiation, resigning, workplace conflict",
    "education": "Study and school advice: learning techniques, exams, admissions, accommodations",
    "math": "Maths help: percentages, algebra, probability, statistics, calculus, finance maths",
    "science": "Science explanations and practical science: chemistry, physics, lab and home safety",
    "extreme-sports": "Risky sports: diving, climbing, mountaineering, avalanche, skydiving, whitewater",
}

for _name, _description in ADVICE_DOMAINS.items():
    register(
        Domain(
            name=_name,
            description=_description,
            kind="advice",
            offline_source=lambda name=_name: BankSource(name),
        )
    )

__all__ = ["Answer", "Domain", "Draft", "DraftSource", "all_domains", "get_domain", "register"]
