"""Figure 1 of the paper: the synthetic training data next to the test data.

matplotlib is imported inside the function, so importing the package never pulls it in.
"""

from ..errors import DataError


def plot_synthetic(dataset, ax=None):
    """Scatter a 2-D data set's training points (left) and test points (right), coloured by class.

    Parameters
    ----------
    dataset : Dataset
        A data set with exactly two features, e.g. ``load_dataset("circles")``.
    ax : pair of matplotlib Axes, optional
        Where to draw the training and the test panel; default a new 1 x 2 figure.

    Returns
    -------
    matplotlib.figure.Figure
        Never shown; the caller saves it.

    Examples
    --------
    >>> from stableresnet.data import load_dataset
    >>> figure = plot_synthetic(load_dataset("circles", seed=0))
    >>> len(figure.axes)
    2
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    if dataset.n_features != 2:
        raise DataError(f"{dataset.name}: plot_synthetic needs 2 features, the data set has {dataset.n_features}")
    if ax is None:
        figure = Figure(figsize=(9, 4.2), layout="constrained")
        ax = figure.subplots(1, 2, sharex=True, sharey=True)
    train_ax, test_ax = ax
    for panel, X, y, title in ((train_ax, dataset.X_train, dataset.y_train, "training data"),
                               (test_ax, dataset.X_test, dataset.y_test, "test data")):
        for k, label in enumerate(dataset.class_names):
            panel.scatter(X[y == k, 0], X[y == k, 1], s=8, color=f"C{k}", label=f"class {label}")
        panel.set_title(f"{dataset.name}: {title} (n = {len(y)})")
        panel.set_xlabel(dataset.feature_names[0])
        panel.set_aspect("equal", adjustable="box")
    train_ax.set_ylabel(dataset.feature_names[1])
    train_ax.legend(loc="upper right", fontsize="small")
    return train_ax.figure
