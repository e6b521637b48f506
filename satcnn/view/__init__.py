"""``satcnn view``: a local web map of satcnn's outputs (imagery, probability, mask, class map, roads)."""

from satcnn.view.catalog import Catalog, ViewTile, load_catalog

__all__ = ["Catalog", "ViewTile", "load_catalog"]
