"""PyTorch's own test inputs for its losses, the parity cases of several test files.

``torch.testing._internal`` needs the ``expecttest`` package (in the ``test`` extra).
"""


def module_and_op_db():
    """``(common_modules.module_db, common_methods_invocations.op_db)``: PyTorch's module and op test entries."""
    from torch.testing._internal.common_methods_invocations import op_db
    from torch.testing._internal.common_modules import module_db

    return module_db, op_db
