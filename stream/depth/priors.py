"""Typical real sizes of detected classes: what a box of a class measures in metres, with its spread.

A prior is the size of the **box** a detector draws around an object of the class (feet to top of the head for
a standing person), along one dimension, as a mean and a population standard deviation (1 sigma). Only classes
whose size varies little get one; every other class gets no distance from its size. Sources are cited per class
below; a number derived from them (rather than read off) says how.

Which dimension:

- **person: height when standing.** Stature varies about 6 % in a mixed adult population, and a standing
  person's box height is the stature plus shoes and hair. A box's width changes with pose, arm swing, stride
  and view (about 25 %), so the width prior only serves a box whose height is not a person's full height
  (sitting, cut by the frame, hidden below the waist): see :mod:`stream.depth.sizeprior`.
- **car, bus, truck, motorcycle, bicycle: height.** A vehicle's box width is anything between its width and
  its length as it turns (a car: 1.8 m to 4.5 m); its height is the same from every side. From a camera that
  looks down on it, the box also covers the roof, so the height prior holds for cameras near the object's
  height (a car, a hand, a tripod, a doorbell), not for one high above a road.
- **stop sign: height, then width.** A face-on octagon is as wide as it is high; turned away it only narrows.

Spreads combine the spread within a population (e.g. between men and women) with the spread between
populations or models. A prior whose spread is above ``depth.size_prior.max_spread`` gives distances that
are reported but flagged unreliable (a truck: pickups and lorries are both "truck").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SizePrior", "ClassPrior", "CLASS_PRIORS", "prior_for"]


@dataclass(frozen=True)
class SizePrior:
    """The size of a class's box along one dimension.

    metres: mean size in metres. sd_m: population standard deviation (1 sigma) in metres.
    source: where the numbers come from (cited in words, enough to find it again).
    """

    metres: float
    sd_m: float
    source: str

    @property
    def spread(self) -> float:
        """Relative 1-sigma spread (sd / mean), about the standard deviation of the size's logarithm."""
        return self.sd_m / self.metres


@dataclass(frozen=True)
class ClassPrior:
    """The priors of one class: ``primary`` is the dimension that gives its distance (``height`` or
    ``width``); the other one, when present, serves only when the primary one cannot (see
    :mod:`stream.depth.sizeprior`). ``upright`` marks a class whose height holds only when its box is
    upright (a standing person): a box wider than ``depth.size_prior.person_min_aspect`` allows is not."""

    primary: Literal["height", "width"]
    height: SizePrior | None = None
    width: SizePrior | None = None
    upright: bool = False

    def prior(self, dimension: str) -> SizePrior | None:
        return self.height if dimension == "height" else self.width


# -- person --------------------------------------------------------------------------------------------
# Stature of adults. US (NHANES 2015-2016, NCHS National Health Statistics Reports no. 122, Fryar et al. 2018):
# mean about 175 cm for men and 162 cm for women; England (Health Survey for England) about the same. Within
# one sex the standard deviation is about 7 cm (NCHS Vital and Health Statistics series 11 no. 8: 2.85 in = 7.2 cm
# for men, 2.58 in = 6.6 cm for women). Between countries the mean moves by up to 12 cm either way (NCD Risk
# Factor Collaboration, "A century of trends in adult human height", eLife 2016;5:e13410: men born 1996 from about
# 160 cm, East Timor, to 182.5 cm, the Netherlands; women from about 150 cm, Guatemala, to 170 cm, Latvia).
# Derived: an even mix of men and women has mean 168.5 cm and sd sqrt(0.5 * (7.2^2 + 6.6^2) + 6.5^2) = 9.5 cm;
# 10 cm allows for the spread between countries. A detector's box runs from the sole of the shoe to the top of
# the hair: about 2.5 cm of shoe and 1 cm of hair above stature (measured barefoot, hair pressed down), so the
# standing box is 1.72 m. Children are shorter and read farther: the scale fit rejects them as outliers.
_STATURE = SizePrior(
    1.72, 0.10,
    "adult stature: NHANES 2015-2016 (NCHS NHSR 122) men 175 cm, women 162 cm, sd 7 cm within a sex (NCHS series "
    "11 no. 8); NCD-RisC 2016 (eLife 5:e13410) for the spread between countries; + 3.5 cm shoes and hair")
# Width of a whole pedestrian's box: CityPersons (Zhang, Benenson, Schiele, CVPR 2017) and the Caltech
# pedestrian benchmark (Dollar et al., PAMI 2012) draw full-body boxes at a fixed aspect ratio width/height = 0.41,
# the ratio typical of walking people. Derived: 0.41 x 1.72 m = 0.70 m; the 0.20 m spread covers side and front
# views, arm swing and stride (0.5-0.9 m).
_PERSON_WIDTH = SizePrior(
    0.70, 0.20,
    "CityPersons (CVPR 2017) / Caltech pedestrians (PAMI 2012) full-body box aspect 0.41 x the standing box height")

# -- cars --------------------------------------------------------------------------------------------------
# Manufacturers' published heights (unladen): VW Golf 8 1.46 m, Toyota Corolla saloon (E210) 1.44 m, Tesla
# Model 3 1.44 m, Fiat 500 1.49 m, Toyota RAV4 (XA50) 1.69 m, other compact SUVs 1.6-1.7 m; estate cars and
# MPVs in between. Derived: 1.50 m mean, sd 0.12 m covers 1.4 m saloons to 1.75 m SUVs (vans taller than 1.9 m
# read nearer than they are).
_CAR_HEIGHT = SizePrior(
    1.50, 0.12,
    "manufacturers' heights: saloons and hatchbacks 1.44-1.49 m (Golf 8, Corolla E210, Model 3, Fiat 500), "
    "compact SUVs 1.6-1.7 m (RAV4 XA50)")

# -- buses ----------------------------------------------------------------------------------------------
# Council Directive 96/53/EC (EU, annex I): at most 2.55 m wide and 4.00 m high in international traffic.
# Single-deck city buses are 3.0-3.3 m high with their roof-mounted air conditioning (e.g. Mercedes-Benz Citaro,
# about 3.1 m; Solaris Urbino 12, about 3.3 m); double-deckers (allowed above 4 m nationally, e.g. in the UK)
# 4.2-4.4 m. Derived: 3.3 m, sd 0.45 m; a double-decker reads about 25 % too near.
_BUS_HEIGHT = SizePrior(
    3.30, 0.45,
    "Directive 96/53/EC (max 4.00 m high in international traffic); single-deck city buses 3.0-3.3 m "
    "(Citaro, Urbino 12), double-deckers 4.2-4.4 m")

# -- trucks -------------------------------------------------------------------------------------------
# COCO's "truck" covers pickups (Ford F-150 about 1.96 m, Toyota Hilux about 1.8 m), box vans (2.5-3.5 m) and
# lorries with semi-trailers up to the 4.00 m of Directive 96/53/EC. Derived: 2.8 m, sd 0.8 m: too wide a
# spread to be trusted (flagged unreliable by default).
_TRUCK_HEIGHT = SizePrior(
    2.80, 0.80,
    "pickups 1.8-2.0 m (F-150, Hilux) to lorries at the 4.00 m of Directive 96/53/EC")

# -- motorcycles ------------------------------------------------------------------------------------------
# Manufacturers' overall heights: naked and sport bikes 1.05-1.15 m (Yamaha MT-07, Kawasaki Z900, Honda CB500F),
# scooters about 1.15 m, adventure and touring bikes 1.4-1.5 m with their screens (BMW R 1250 GS). Derived:
# 1.20 m, sd 0.15 m.
_MOTORCYCLE_HEIGHT = SizePrior(
    1.20, 0.15,
    "manufacturers' overall heights: naked/sport 1.05-1.15 m (MT-07, Z900, CB500F) to adventure 1.4-1.5 m (R 1250 GS)")

# -- bicycles -----------------------------------------------------------------------------------------
# An adult bicycle's highest point is its saddle or handlebar: wheel radius (ISO 5775 / ETRTO 622 mm and 559 mm
# rims: tyres of about 0.66-0.72 m outer diameter) plus the frame's stack (frame makers' geometry tables, about
# 0.53-0.65 m for adult sizes) plus stem and bar. Derived: 1.05 m, sd 0.10 m; children's bicycles are smaller.
_BICYCLE_HEIGHT = SizePrior(
    1.05, 0.10,
    "ISO 5775 wheel sizes (0.66-0.72 m tyres) + adult frame stack 0.53-0.65 m (makers' geometry tables) + stem and bar")

# -- stop signs --------------------------------------------------------------------------------------------
# US MUTCD Table 2B-1: STOP (R1-1) 750 x 750 mm on conventional roads, 900 x 900 mm multi-lane and expressway,
# 600 mm minimum, 1200 mm oversized; Vienna Convention signs (sign B2a) 600-1200 mm by road class. Derived:
# 0.80 m, sd 0.13 m for the octagon's height and width.
_STOP_SIGN = SizePrior(0.80, 0.13, "US MUTCD Table 2B-1 (R1-1: 600-1200 mm, 750 mm on conventional roads)")

CLASS_PRIORS: dict[str, ClassPrior] = {
    "person": ClassPrior("height", height=_STATURE, width=_PERSON_WIDTH, upright=True),
    "bicycle": ClassPrior("height", height=_BICYCLE_HEIGHT),
    "car": ClassPrior("height", height=_CAR_HEIGHT),
    "motorcycle": ClassPrior("height", height=_MOTORCYCLE_HEIGHT),
    "bus": ClassPrior("height", height=_BUS_HEIGHT),
    "truck": ClassPrior("height", height=_TRUCK_HEIGHT),
    "stop sign": ClassPrior("height", height=_STOP_SIGN, width=_STOP_SIGN),
}
"""Priors by the detector's class name (COCO's names); a class that is not here has no prior."""


def prior_for(class_name: str) -> ClassPrior | None:
    """The priors of a class by name, or None (the class gets no distance from its size)."""
    return CLASS_PRIORS.get(class_name)
