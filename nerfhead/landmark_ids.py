"""Index sets into mediapipe's 478-point face mesh, shared by capture and evaluation.

Subject's right eye is on the image's left. Sets are plain tuples so that they can be
used as numpy fancy indices.
"""

# Points that speech and expressions do not move: forehead, nose bridge/tip, eye corners,
# and the face's sides at the cheekbones/temples. Pose and shape are fitted to these.
FOREHEAD = (10, 151, 9, 8, 108, 337, 109, 338, 67, 297, 69, 299)
NOSE_BRIDGE = (168, 6, 197, 195, 5, 4, 1)
EYE_CORNERS = (33, 133, 362, 263)
FACE_SIDES = (234, 454, 127, 356, 93, 323)
RIGID = FOREHEAD + NOSE_BRIDGE + EYE_CORNERS + FACE_SIDES

# The outline of the face, in ring order from the top of the forehead (10), going down the
# image's left side to the chin (152) and back up the right side.
FACE_OVAL = (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
             377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338)
# The jaw part of the oval, from the image-left ear (234) through the chin to the right ear (454).
JAW = FACE_OVAL[FACE_OVAL.index(234):FACE_OVAL.index(454) + 1]
CHIN = 152

# mediapipe FACEMESH_LIPS: the 40 lip landmarks used by the LMD metric.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267,
        269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
INNER_LIP_TOP, INNER_LIP_BOTTOM = 13, 14
# The inner lip contour in ring order, from the image-left corner (78) along the upper lip to the
# right corner (308) and back along the lower lip: the outline of the mouth's inside (teeth, tongue).
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MOUTH_CORNERS = (61, 291)

# Eyes: vertical eyelid pairs (upper, lower) and the corner pair (outer, inner) per eye.
RIGHT_EYE_LIDS = ((159, 145), (158, 153), (160, 144))
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_LIDS = ((386, 374), (385, 380), (387, 373))
LEFT_EYE_CORNERS = (263, 362)

# Face height reference for normalising mouth opening: forehead top to chin.
FACE_TOP = 10
