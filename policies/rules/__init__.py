"""Pure rule functions and facts shared by the components and the CrossGuard pack.

Nothing in this package imports ``pulumi`` or ``pulumi_policy``: the components call these
functions to refuse bad input before declaring anything, and the pack calls the same functions on
the wire properties the engine sends.

The pack relies on the rules being pure functions of their arguments that only read them: every
policy of a call gets the same copy of a resource's properties, and a resource rule's messages are
computed once per call, both to decide whether it has anything to say (``policies.conversion.SILENT_ATTR``)
and, when it has, to report them through the SDK's own path.
"""
