"""Reference downstream consumer: the benefits-payment agency's view of registered IDPs.

Written the way another agency would write it: it knows our system only through the published
contract (schemas/asyncapi.yaml and the .avsc files under schemas/, history included), and uses
none of this project's Python modules. Run it with ``python -m consumers.benefits_agency``.
"""
